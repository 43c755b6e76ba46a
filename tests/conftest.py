import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["COURSE_PROFILE"] = os.environ.get("COURSE_TEST_PROFILE", "fast")
