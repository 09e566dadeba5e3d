"""Tables written by independent students (helpers given the handout, not the checks): see grader/mistakes."""
