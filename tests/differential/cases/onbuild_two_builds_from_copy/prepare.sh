mkdir d; echo x > d/x; tar --sort=name --mtime=@0 --owner=0 --group=0 -cf data.tar -C d .; rm -rf d
