mkdir -p tree/sub/deeper/deepest tree/empty1/empty2 tree/sub/emptyleaf
echo a > tree/sub/deeper/a.txt
ln -s deeper tree/sub/link-to-dir
ln -s ../sub/deeper/a.txt tree/sub/rel-file
ln -s /nonexistent tree/abs-dangling
ln -s . tree/sub/self
chmod 700 tree/sub/deeper
chmod 711 tree/empty1
