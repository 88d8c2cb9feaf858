//! Sentence embeddings from a local BERT-family model, on the CPU.
//!
//! The model is a sentence-transformers folder on disk (`config.json`, `tokenizer.json`,
//! `model.safetensors`); nothing is downloaded. Inference is the sentence-transformers recipe for
//! this family: BERT, mean pooling over the real (unpadded) tokens, then L2 normalisation, so the
//! cosine similarity of two embeddings is their dot product.
//!
//! Everything here is synchronous and CPU-bound (milliseconds per sentence): async code calls it
//! through [`crate::EmbeddingService`], which runs it on the blocking pool.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The longest input, in tokens, the model sees; longer texts are cut at the end.
///
/// sentence-transformers uses 256 for the MiniLM family (`sentence_bert_config.json`), while the
/// bundled `tokenizer.json` says 128 and pads every input to 128: we override both.
pub const MAX_TOKENS: usize = 256;

/// Texts per forward pass. Bounds the memory of one pass (batch × tokens² attention scores) when a
/// caller hands over hundreds of documents at once.
const MAX_BATCH: usize = 32;

/// The files a model folder must hold.
const CONFIG_FILE: &str = "config.json";
const TOKENIZER_FILE: &str = "tokenizer.json";
const WEIGHTS_FILE: &str = "model.safetensors";

/// Why a model could not be loaded or a text not embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model folder does not exist or is not a directory.
    #[error("embedding model folder {} does not exist or is not a directory", dir.display())]
    NoModelDir {
        /// The folder that was given.
        dir: PathBuf,
    },
    /// The model folder lacks one of the files a model needs.
    #[error(
        "embedding model folder {} has no {file} (a sentence-transformers folder needs \
         config.json, tokenizer.json and model.safetensors)",
        dir.display()
    )]
    MissingFile {
        /// The model folder.
        dir: PathBuf,
        /// The missing file's name.
        file: &'static str,
    },
    /// A file of the model folder could not be read or parsed.
    #[error("embedding model file {} is unusable: {reason}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokenizer refused a text.
    #[error("could not tokenize the text: {0}")]
    Tokenize(String),
    /// The forward pass failed.
    #[error("embedding inference failed: {0}")]
    Inference(#[from] candle_core::Error),
    /// The blocking task running the model was lost (it panicked or the runtime is shutting down).
    #[error("the embedding worker stopped: {0}")]
    Worker(String),
}

/// A loaded sentence-embedding model: tokenizer and BERT weights.
///
/// Cheap to share behind an `Arc`; [`Embedder::embed`] takes `&self` and may run on several
/// threads at once.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimensions: usize,
    dir: PathBuf,
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the sentence-transformers model in `dir` (`config.json`, `tokenizer.json`,
    /// `model.safetensors`) for the CPU.
    ///
    /// Any BERT-family model works (MiniLM, BGE, E5 …). The tokenizer's own padding and truncation
    /// are replaced: inputs are padded to the longest in each batch, not to a fixed length, and cut
    /// at [`MAX_TOKENS`].
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::NoModelDir {
                dir: dir.to_path_buf(),
            });
        }
        let file = |name: &'static str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(EmbedError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: name,
                })
            }
        };
        let (config_path, tokenizer_path, weights_path) = (
            file(CONFIG_FILE)?,
            file(TOKENIZER_FILE)?,
            file(WEIGHTS_FILE)?,
        );
        let invalid = |path: &Path, reason: String| EmbedError::InvalidFile {
            path: path.to_path_buf(),
            reason,
        };

        let config: Config = std::fs::read(&config_path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
            .map_err(|reason| invalid(&config_path, reason))?;

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| invalid(&tokenizer_path, e.to_string()))?;
        let pad_id = config.pad_token_id;
        let pad_token = tokenizer
            .id_to_token(u32::try_from(pad_id).unwrap_or(u32::MAX))
            .ok_or_else(|| {
                invalid(
                    &tokenizer_path,
                    format!("the pad token id {pad_id} of config.json is not in the vocabulary"),
                )
            })?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: u32::try_from(pad_id).unwrap_or(0),
            pad_token,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| invalid(&tokenizer_path, e.to_string()))?;

        let device = Device::Cpu;
        // Read rather than memory-mapped: mapping a file is `unsafe` (another process could change
        // it under us), and this workspace forbids unsafe code. The bytes are dropped once the
        // tensors are built, so the model costs its size in memory once.
        let weights = std::fs::read(&weights_path)
            .map_err(|e| invalid(&weights_path, e.to_string()))
            .and_then(|bytes| {
                candle_core::safetensors::load_buffer(&bytes, &device)
                    .map_err(|e| invalid(&weights_path, e.to_string()))
            })?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| {
            invalid(
                &weights_path,
                format!("not the BERT weights config.json describes: {e}"),
            )
        })?;

        Ok(Self {
            model,
            tokenizer,
            device,
            dimensions: config.hidden_size,
            dir: dir.to_path_buf(),
        })
    }

    /// The length of every embedding (384 for all-MiniLM-L6-v2).
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embeds each text: one unit-length vector of [`Embedder::dimensions`] per text, in order.
    ///
    /// Texts are run in batches of similar length, so a long document does not make every short
    /// one in its batch pay for padding. The result for a text does not depend on its batch
    /// companions (beyond float rounding, well under 1e-4).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Sorting by length is a cheap stand-in for sorting by token count.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(MAX_BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// One forward pass over texts padded to the longest of them.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let batch = encodings.len();
        let tokens = encodings.first().map_or(0, |e| e.len());
        if batch == 0 || tokens == 0 {
            return Ok(vec![vec![0.0; self.dimensions]; batch]);
        }
        let flat = |part: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| part(e).iter().copied())
                .collect()
        };
        let input_ids = Tensor::from_vec(flat(|e| e.get_ids()), (batch, tokens), &self.device)?;
        let type_ids = Tensor::from_vec(flat(|e| e.get_type_ids()), (batch, tokens), &self.device)?;
        let mask = Tensor::from_vec(
            flat(|e| e.get_attention_mask()),
            (batch, tokens),
            &self.device,
        )?;

        // (batch, tokens, hidden); padded positions are masked out of attention, so the real
        // tokens' states do not depend on how much padding follows them.
        let hidden = self.model.forward(&input_ids, &type_ids, Some(&mask))?;

        // Mean pooling over the real tokens only: padded positions have mask 0.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?;
        let mean = summed.broadcast_div(&counts)?;

        // L2 normalisation; the clamp keeps an all-zero vector from dividing by zero.
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::INFINITY)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}
