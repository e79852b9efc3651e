//! The guide is generated; this fails when the committed copy drifts from the code, and runs every command it
//! shows again so that "real output of the command on its first line" stays true.

fn committed() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/quorum-math.md");
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn quorum_math_guide_matches_the_generator() {
    let generated = quorumlab_quorum::guide::quorum_math_guide();
    assert!(
        committed() == generated,
        "docs/quorum-math.md is stale: run `cargo run -p quorumlab-quorum --example gen-docs` and commit it"
    );
}

#[test]
fn every_block_in_the_guide_is_the_output_of_the_command_it_shows() {
    let guide = committed();
    let mut checked = Vec::new();
    for block in guide.split("```text\n").skip(1) {
        let body = block.split("```").next().unwrap_or_default();
        let Some(rest) = body.strip_prefix("$ quorumlab quorum ") else {
            panic!("a block without the command that printed it:\n{body}");
        };
        let (command_line, printed) = rest.split_once('\n').unwrap_or((rest, ""));
        assert_eq!(printed, quorumlab_quorum::guide::run_command_line(command_line), "`{command_line}`");
        checked.push(command_line.to_string());
    }
    // The `rule majority/half` blocks are reproducible with the --rule flag (issue 14, error 3).
    assert!(checked.iter().any(|c| c.contains("--rule half")), "{checked:?}");
    assert!(checked.len() >= 10, "{checked:?}");
}
