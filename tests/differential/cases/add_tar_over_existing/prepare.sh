mkdir -p src/d && echo new > src/x && echo inner > src/d/y
chmod 700 src/d
tar --sort=name --mtime=@0 --owner=7 --group=8 -cf over.tar -C src .
rm -rf src
