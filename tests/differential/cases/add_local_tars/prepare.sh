mkdir -p src/sub
echo one > src/one
echo two > src/sub/two
ln -s one src/link
chmod 640 src/one
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf plain.tar -C src .
tar --sort=name --mtime=@0 --owner=1000 --group=50 -cf archive.tar -C src one sub link
gzip -n -c archive.tar > archive.tar.gz
bzip2 -c archive.tar > archive.tar.bz2
xz -c archive.tar > archive.tar.xz
rm -rf src archive.tar
