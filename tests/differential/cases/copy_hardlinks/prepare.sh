mkdir -p dir/sub
echo linked > dir/one
ln dir/one dir/two
ln dir/one dir/sub/three
echo solo > dir/solo
