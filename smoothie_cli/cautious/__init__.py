"""Cautious speculative decoding: a tagged draft gates each request, then drafts tokens a target verifies."""
