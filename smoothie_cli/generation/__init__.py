"""The one place where prompts become tokens.

- `prompts`     chat prompts and stop ids
- `sampling`    the sampling settings a user gives (temperature, top-k, top-p, repetition penalty, seed)
- `logits`      one logits pipeline (transformers' LogitsProcessorList) used by every decoding path, draft and
                target alike: smoothing scales, logit bias, repetition penalty, then the sampling warpers
- `cache`       a batch-1 model with its own KV cache, fed a block at a time and cropped back
- `batched`     batched plain decoding (left padding, finished rows leave the batch) and the `Generator`s
- `speculative` speculative decoding split as transformers splits assisted generation: proposers (a draft
                model, prompt lookup, both), a verifier (greedy, exact rejection sampling), a γ scheduler
- `stream`      incremental detokenisation for streaming text (tokenizers' DecodeStream)
- `engine`      the one decode path: a target and an optional draft behind one interface (one answer by
                speculation, many by batched decoding, a continuous batch for the server), owning the
                seeded-sampling rule

Nothing here knows about gates, datasets or the CLI; `cautious/` and `evaluation/` build on it.
"""
