long=$(printf 'L%.0s' $(seq 1 180))
mkdir -p "s/$long/$long"
echo x > "s/$long/$long/file-$long"
echo y > s/owned
ln -s "$long/$long/file-$long" s/longlink
tar --sort=name --mtime=@0 --owner=123456 --group=654321 --format=pax -cf big.tar -C s .
gzip -n -c big.tar > big.tar.gz
rm -rf s
