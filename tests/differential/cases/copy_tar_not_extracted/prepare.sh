mkdir src && echo x > src/x
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf - -C src . | gzip -n > archive.tar.gz
rm -rf src
