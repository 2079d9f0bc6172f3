"""Scale formula → per-token scales → a streamed lm_head rewrite, or the same scales at run time."""
