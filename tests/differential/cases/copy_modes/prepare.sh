mkdir -p files/private files/open
echo a > files/secret && chmod 600 files/secret
echo b > files/suid && chmod 4755 files/suid
echo c > files/ro && chmod 444 files/ro
echo d > files/private/x && chmod 700 files/private
chmod 1777 files/open
echo e > files/exec && chmod 750 files/exec
