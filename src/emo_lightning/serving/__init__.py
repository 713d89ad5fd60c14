"""The HTTP service of `python serve.py run_dir=<run>`: request checks (`payloads`), settings and the listening
socket (`settings`), the cross-request micro-batcher (`batcher`), the FastAPI app (`app`), the demo page (`page`)
and the uvicorn runner (`server`). Every prediction goes through `EmotionPredictor.predict`.

May import evaluation, inference, models, data and utils; imported by the scripts and cli.
"""
