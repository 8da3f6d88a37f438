//! Regenerate the golden vectors in `kernels/vectors/` from the CPU reference:
//!
//! ```sh
//! cargo run -p infera-kernels --example gen-vectors
//! ```
//!
//! Each case is built from its seed (see `tests/it/cases.rs`), run through
//! `cpu::execute_op`, and written as `vectors/<name>.json`. The tests then check
//! that the reference still produces exactly those bytes.

#[path = "../tests/it/cases.rs"]
mod cases;
#[path = "../tests/it/vectors.rs"]
mod vectors;

fn main() {
    let dir = vectors::dir();
    std::fs::create_dir_all(&dir).expect("create vectors dir");
    let all = cases::all();
    for case in &all {
        let ins: Vec<&infera_kernels::Tensor> = case.inputs.iter().collect();
        let out = infera_kernels::cpu::execute_op(&case.op, &ins, case.out_zero_point)
            .unwrap_or_else(|e| panic!("case {} is invalid: {e}", case.name));
        let v = vectors::to_json(
            &case.name,
            case.seed,
            &case.op,
            &case.inputs,
            case.out_zero_point,
            &out,
        );
        let text = serde_json::to_string_pretty(&v).expect("json") + "\n";
        std::fs::write(dir.join(format!("{}.json", case.name)), text).expect("write vector");
    }
    println!("wrote {} vectors to {}", all.len(), dir.display());
}
