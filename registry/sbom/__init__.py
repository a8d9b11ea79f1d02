"""What is inside an image, as an SPDX 2.3 SBOM.

- ``files``: the final content of the few files that record packages, read from the
  layers (whiteouts applied) without unpacking the image.
- ``packages``: dpkg's status database, apk's installed database, Python ``*.dist-info``.
- ``spdx``: the SPDX 2.3 JSON document.
"""
