ln -s a.txt link-to-a
mkdir -p dir
ln -s ../a.txt dir/rel
ln -s /etc/passwd dir/abs
ln -s missing dir/dangling
echo inner > dir/inner
