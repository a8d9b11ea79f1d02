"""The layer codec: deterministic tar writer, compressors, one-pass pipeline, safe extractor.

- :func:`write_layer`: a directory (or an overlayfs upper dir) -> a compressed blob in the store.
- :func:`tar_stream_to_blob`: an uncompressed tar stream -> a blob, compressed as asked.
- :func:`open_layer`: a layer blob (gzip, zstd or plain, detected by magic) -> the tar stream.
- :func:`extract_layer`: a tar stream -> a directory, treating the archive as hostile.
"""

from .compress import COMPRESSIONS
from .extract import extract_layer
from .pipeline import LayerResult, tar_stream_to_blob, write_layer
from .stream import open_layer

__all__ = ["COMPRESSIONS", "LayerResult", "extract_layer", "open_layer", "tar_stream_to_blob", "write_layer"]
