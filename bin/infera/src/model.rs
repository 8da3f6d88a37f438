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
            ModelCommand::Inspect { file } => cli::inspect_file(&file)?,
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
