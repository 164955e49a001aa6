"""Names of the exported SavedModel signatures, shared by exporters and
their readers (validator, TFLite conversion, server)."""

SERVING_DEFAULT = "serving_default"
GENERATE = "generate"
SCORE_EXAMPLES = "score_examples"
# The bare network on fixed-shape token ids: the graph TFLite converts.
LOGITS_FROM_IDS = "logits_from_ids"
