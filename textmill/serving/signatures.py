"""Names of the exported SavedModel signatures, every one defined here.

Exporters write them and their readers (validator, TFLite conversion and
generation, server, client) look them up by these names; a pushed model's
signatures are part of its contract with clients, so the values never
change.
"""

# Every family's serving SavedModel.
SERVING_DEFAULT = "serving_default"
# The bare network on fixed-shape token ids: the graph TFLite converts. In
# both the serving SavedModel and the bare-network one.
LOGITS_FROM_IDS = "logits_from_ids"

# Causal LMs: scoring serialized tf.Examples (for TFX tools), and one
# generation signature per decoding strategy (see `generation_signatures`).
SCORE_EXAMPLES = "score_examples"
# The input of `score_examples`: serialized tf.Examples, string [batch].
SERIALIZED_EXAMPLES_INPUT = "examples"
GENERATE = "generate"
GENERATE_SAMPLE = "generate_sample"
GENERATE_BEAM = "generate_beam"
GENERATE_CONTRASTIVE = "generate_contrastive"
# Greedy generation on token ids, in the bare-network SavedModel: the TFLite
# generation graph (see `token_id_generation`).
GENERATE_IDS = "generate_ids"
# Summarization: greedy summaries of raw documents.
SUMMARIZE = "summarize"
# Translation: raw source sentences in, their translations out, one
# signature per decoding strategy (greedy, sampling, beam search).
TRANSLATE = "translate"
TRANSLATE_SAMPLE = "translate_sample"
TRANSLATE_BEAM = "translate_beam"

# Masked LMs: filling `<mask>` tokens and document embeddings.
FILL_MASK = "fill_mask"
EMBED = "embed"

# Classifiers: raw text in, label strings and class probabilities out.
CLASSIFY = "classify"
