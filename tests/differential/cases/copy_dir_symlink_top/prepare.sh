mkdir -p realdir/sub
echo r > realdir/sub/r
ln -s realdir linkdir
