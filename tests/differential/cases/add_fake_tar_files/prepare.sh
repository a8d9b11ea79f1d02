echo "this is just text" > notreally.tar
echo "also text" > notreally.tar.gz
: > empty.tar
echo "plain payload" | gzip -n > gz-not-tar.gz
