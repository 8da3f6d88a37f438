//! The `infera model` subcommands without the node binary:
//!
//! ```sh
//! cargo run -p infera-model-import --example model-cli -- inspect kernels/models/digits/digits.infera
//! cargo run -p infera-model-import --example model-cli -- run kernels/models/digits/digits.infera --input x.npy --argmax
//! cargo run -p infera-model-import --example model-cli -- import m.onnx --calibrate c.npy -o m.infera [--eval x.npy --labels y.npy]
//! ```

use infera_model_import::cli;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(Path::new)
    };
    let result = match args.first().map(String::as_str) {
        Some("inspect") => cli::inspect_file(Path::new(&args[1])),
        Some("run") => cli::run_file(
            Path::new(&args[1]),
            flag("--input").expect("--input"),
            args.iter().any(|a| a == "--argmax"),
        ),
        Some("import") => cli::import_file(
            Path::new(&args[1]),
            flag("--calibrate").expect("--calibrate"),
            flag("-o").expect("-o"),
            flag("--eval").zip(flag("--labels")),
        ),
        _ => {
            eprintln!("usage: model-cli inspect|run|import ...");
            std::process::exit(2);
        }
    };
    match result {
        Ok(text) => println!("{text}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
