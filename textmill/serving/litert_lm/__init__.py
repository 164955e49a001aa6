"""On-device generation with the LiteRT-LM runtime: `.litertlm` bundles
(a `prefill_<T>` + `decode` TFLite model, its HF tokenizer and metadata),
packed and run in their own environment (see `environment`)."""
