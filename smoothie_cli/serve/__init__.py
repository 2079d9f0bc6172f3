"""`smoothie serve`: an OpenAI-compatible chat-completions server over the cautious, smoothed engine.

- `app`        routes, OpenAI request/response schemas, auth, limits, errors, server-sent events
- `scheduler`  the bounded queue and the worker thread: batching, stop strings, cancellation, draining
- `backend`    the only place that talks to the models: gate a batch, stream one answer, decode a batch
"""
