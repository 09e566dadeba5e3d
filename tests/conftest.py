import os

# Keep Lightning quiet and progress bars off in the test logs.
os.environ.setdefault("CI", "1")
