"""The build executor: context, cache, COPY/ADD, stages, progress."""
