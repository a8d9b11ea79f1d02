mkdir s; echo x > s/x; tar --sort=name --mtime=@0 --owner=0 --group=0 -cf a.tar -C s .; rm -rf s
