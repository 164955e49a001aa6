"""Feature names and component keys: every one defined here, once.

Each name is a string that leaves the process: a `tf.Example` key in the
TFRecords the example generators write, a feature of Transform's output, an
input of a SavedModel signature, or the key of a component's channel or
execution parameter in the pipeline's metadata. Changing a value changes
what is on disk and what clients send, so values never change; code imports
the names from here instead of spelling the strings.

One concept has one name:

- raw features are what the example generators write (`TEXT_FEATURE`,
  `TARGET_FEATURE`, `DOC_ID_FEATURE`, the sentence pairs);
- transformed features are what the families' `preprocessing_fn`s write
  (`INPUT_IDS_FEATURE` for byte-level BPE ids of a whole document,
  `LOSS_MASK_FEATURE`, the pass-through `DOCUMENT_FEATURE` and
  `REFERENCE_FEATURE`);
- model inputs are the keras-hub backbone inputs (`TOKEN_IDS_FEATURE`,
  `SEGMENT_IDS_FEATURE`, `PADDING_MASK_FEATURE`, `MASK_POSITIONS_FEATURE`);
  the next-sentence Transform writes them directly;
- component keys name channels and execution parameters, after TFX's
  `standard_component_specs`, whose values they share where TFX has one.
"""

from __future__ import annotations

# --- Raw features: the tf.Examples of TextExampleGen and SentencePairGen.

# A document's text; summarization's source document.
TEXT_FEATURE = "text"
# A document's paired text, when the input has a target field: the
# reference summary for summarization.
TARGET_FEATURE = "target"
# A stable id of the document an example came from.
DOC_ID_FEATURE = "doc_id"
# The file a document was read from.
SOURCE_FEATURE = "source"
SENTENCE_A_FEATURE = "sentence_a"
SENTENCE_B_FEATURE = "sentence_b"
# 1 when `sentence_b` follows `sentence_a` in its document, else 0.
IS_NEXT_FEATURE = "is_next"

# --- Transformed features: what the families' preprocessing_fns write.

# Byte-level BPE ids of a whole example, VarLen int64 (causal LM, masked LM,
# summarization); the trainer packs or windows them into `token_ids`.
INPUT_IDS_FEATURE = "input_ids"
# 1 where a token counts towards the loss (summarization: the summary).
LOSS_MASK_FEATURE = "loss_mask"
# Summarization passes its stripped document and summary through, so
# validation can generate from one and score against the other; the
# `summarize` signature takes its input under the same name.
DOCUMENT_FEATURE = "document"
REFERENCE_FEATURE = "reference"
# A classifier's class id, int64: the line of the example's label (the raw
# `target`) in the label vocabulary Transform learned, -1 when unseen.
LABEL_FEATURE = "label"

# Translation: byte-level BPE ids of the source sentence (the encoder's
# input) and of its translation, end-of-text included (the decoder's).
SOURCE_IDS_FEATURE = "source_ids"
TARGET_IDS_FEATURE = "target_ids"

# --- Model inputs: keras-hub's backbone input names.

TOKEN_IDS_FEATURE = "token_ids"
SEGMENT_IDS_FEATURE = "segment_ids"
PADDING_MASK_FEATURE = "padding_mask"
MASK_POSITIONS_FEATURE = "mask_positions"
# keras-hub's encoder-decoder (BART) inputs.
ENCODER_TOKEN_IDS_FEATURE = "encoder_token_ids"
ENCODER_PADDING_MASK_FEATURE = "encoder_padding_mask"
DECODER_TOKEN_IDS_FEATURE = "decoder_token_ids"
DECODER_PADDING_MASK_FEATURE = "decoder_padding_mask"

# --- Component channel keys (the values of TFX's standard component specs).

EXAMPLES_KEY = "examples"
SENTENCE_PAIRS_KEY = "sentence_pairs"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
ANOMALIES_KEY = "anomalies"
TRANSFORMED_EXAMPLES_KEY = "transformed_examples"
TRANSFORM_GRAPH_KEY = "transform_graph"
MODEL_KEY = "model"
BASELINE_MODEL_KEY = "baseline_model"
# ModelValidator's output and ServingPusher's input, as in TFX.
BLESSING_KEY = "blessing"
MODEL_BLESSING_KEY = "model_blessing"
TFLITE_MODEL_KEY = "tflite_model"
PUSHED_MODEL_KEY = "pushed_model"

# --- Execution parameter keys.

# TextExampleGen.
INPUT_PATTERNS_KEY = "input_patterns"
INPUT_FORMAT_KEY = "input_format"
TEXT_FIELD_KEY = "text_field"
TEXT_UNIT_KEY = "text_unit"
MIN_CHARS_KEY = "min_chars"
MAX_CHARS_KEY = "max_chars"
EVAL_FRACTION_KEY = "eval_fraction"
STRICT_KEY = "strict"
# Optional, default "": the JSON field or CSV column of each record's target
# (such as a summary). Absent when empty, so that runs without a target keep
# their execution properties, and so their cache keys.
TARGET_FIELD_KEY = "target_field"
# Set by the driver, never by the user: a fingerprint of the matched files
# (paths, sizes, mtimes), so that the cache key changes with the input.
INPUT_FINGERPRINT_KEY = "input_fingerprint"

# SentencePairGen.
TARGET_LENGTH_KEY = "target_length"
LENGTH_UNIT_KEY = "length_unit"
SHORT_SEQ_PROB_KEY = "short_seq_prob"
MAX_SENTENCE_CHARS_KEY = "max_sentence_chars"
SEED_KEY = "seed"

# ModelValidator.
MAX_PERPLEXITY_KEY = "max_perplexity"
MIN_ACCURACY_KEY = "min_accuracy"
MIN_ROUGE_L_KEY = "min_rouge_l"
MAX_REGRESSION_KEY = "max_regression"
MIN_BASELINE_GAIN_KEY = "min_baseline_gain"
CONFIDENCE_KEY = "confidence"
MAX_EVAL_WINDOWS_KEY = "max_eval_windows"

# TFLiteExport.
VARIANTS_KEY = "variants"
PARITY_WINDOWS_KEY = "parity_windows"

# ServingPusher.
SERVING_DIR_KEY = "serving_dir"
MODEL_NAME_KEY = "model_name"
