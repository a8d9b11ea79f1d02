"""What every pybuild package shares and that depends on nothing of them: the
lowest layer (builder, runner and registry may import it; it imports none of them)."""
