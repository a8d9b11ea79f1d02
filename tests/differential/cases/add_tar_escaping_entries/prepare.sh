python3 - <<'PY'
import io, tarfile
with tarfile.open("evil.tar", "w", format=tarfile.GNU_FORMAT) as t:
    for name, data in (("ok.txt", b"ok"), ("../escaped.txt", b"evil"), ("sub/../../up.txt", b"up"), ("/abs.txt", b"abs")):
        i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 0; i.mode = 0o644
        t.addfile(i, io.BytesIO(data))
PY
