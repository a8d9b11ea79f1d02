mkdir -p s/sub/deep s/emptydir
echo new > s/replace
echo n > s/sub/new
echo d > s/sub/deep/d
chmod 700 s/sub/deep
chmod 750 s/emptydir
ln s/replace s/hard
tar --sort=name --mtime=@0 --owner=1000 --group=1000 -cf nested.tar -C s sub replace emptydir hard
gzip -n -c nested.tar > nested.tar.gz
cp nested.tar.gz nested.tgz
xz -c nested.tar > nested.tar.xz
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf dotslash.tar -C s .
tar --sort=name --mtime=@0 --owner=2 --group=2 -P --transform 's,^,/,' -cf abs.tar -C s sub
bzip2 -c abs.tar > abs.tar.bz2
rm -rf s nested.tar abs.tar
