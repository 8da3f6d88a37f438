//! `infera model ...`: inspect, run and import inference models. Parsing only;
//! the work is in `infera-model-import` (off-chain tools) and `infera-kernels`.

use std::path::PathBuf;

/// Subcommands of `infera model`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Print the graph, shapes, parameter count, MACs and inference gas of a model.
    Inspect {
        /// An `.infera` model file.
        file: PathBuf,
    },
    /// Run the CPU reference on each sample of an `.npy` array; print JSON.
    Run {
        /// An `.infera` model file.
        file: PathBuf,
        /// Input samples: int8 arrays are used as is, float arrays are quantised
        /// with the model's input scale. Shape `[..input dims]` or `[N, ..]`.
        #[arg(long)]
        input: PathBuf,
        /// Also print the top-1 index (the label) of each output.
        #[arg(long)]
        argmax: bool,
    },
    /// Convert a float ONNX model into the integer format, calibrating on samples.
    Import {
        /// The float ONNX model.
        onnx: PathBuf,
        /// Calibration inputs, `[N, ..input dims]` float `.npy`.
        #[arg(long)]
        calibrate: PathBuf,
        /// Where to write the `.infera` model.
        #[arg(short, long)]
        output: PathBuf,
        /// Labelled evaluation inputs (`.npy`), to report float and integer accuracy.
        #[arg(long, requires = "labels")]
        eval: Option<PathBuf>,
        /// Integer labels (`.npy`) for `--eval`.
        #[arg(long, requires = "eval")]
        labels: Option<PathBuf>,
    },
    /// Commands that talk to a node: upload, list, info.
    #[command(flatten)]
    Chain(crate::model_chain::ChainCommand),
}

impl ModelCommand {
    /// Execute the subcommand, printing its result to stdout.
    pub fn run(self) -> eyre::Result<()> {
        use infera_model_import::cli;
        let text = match self {
            ModelCommand::Chain(cmd) => return cmd.run(),
            ModelCommand::Inspect { file } => inspect_with_gas(&file)?,
            ModelCommand::Run {
                file,
                input,
                argmax,
            } => cli::run_file(&file, &input, argmax)?,
            ModelCommand::Import {
                onnx,
                calibrate,
                output,
                eval,
                labels,
            } => {
                let eval = eval.as_deref().zip(labels.as_deref());
                cli::import_file(&onnx, &calibrate, &output, eval)?
            }
        };
        println!("{text}");
        Ok(())
    }
}

/// `infera model inspect`: the engine's view of the model plus the gas the
/// registry would fix for it (the pricing lives with the precompiles).
fn inspect_with_gas(file: &std::path::Path) -> eyre::Result<String> {
    use infera_precompiles::gas;
    let mut text = infera_model_import::cli::inspect_file(file)?;
    let bytes = std::fs::read(file)?;
    let model = infera_kernels::Model::decode(&bytes)?;
    let spec_bytes = |s: &infera_kernels::TensorSpec| s.byte_len() as u64;
    let fixed = gas::inference_gas(&model.cost(), bytes.len() as u64);
    let per_call = gas::inference_call_gas(
        fixed,
        spec_bytes(model.input_spec()),
        spec_bytes(model.output_spec()),
    );
    text.push_str(&format!(
        "inference gas {fixed} fixed at registration, {per_call} per call with the {} gas/byte input and output charge\n",
        gas::INFER_GAS_PER_IO_BYTE
    ));
    Ok(text)
}
