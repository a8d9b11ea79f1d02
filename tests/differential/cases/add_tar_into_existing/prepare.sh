mkdir -p src/etc
echo extra > src/etc/extra.conf
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf etc.tar -C src etc
rm -rf src
