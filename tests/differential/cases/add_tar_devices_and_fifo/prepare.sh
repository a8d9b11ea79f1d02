mkdir -p s
mknod s/null c 1 3
mknod s/loop b 7 0
mkfifo s/pipe
echo r > s/regular
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf dev.tar -C s .
rm -rf s
