mkdir -p s; echo t > s/t; tar --sort=name --mtime=@0 --owner=0 --group=0 -cf http/archive.tar -C s .; rm -rf s
