"""Make the target person perform a source video's motion: the batched video runner.

python infer/video.py --source dance.mp4 --model gen.onnx --out out.mp4 --batch 16 [--side-by-side]
python infer/video.py --source dance.mp4 --model gen.onnx --out out.mp4 --background beach.jpg
"""

from ganmotion.errors import interrupted_quietly

with interrupted_quietly():  # a Ctrl-C while torch loads: one line, not a traceback
    from ganmotion.runtime.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
