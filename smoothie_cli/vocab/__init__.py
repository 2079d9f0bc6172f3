"""What a vocabulary writes: scripts, token bytes, target and broken tokens, exact n-gram analysis."""
