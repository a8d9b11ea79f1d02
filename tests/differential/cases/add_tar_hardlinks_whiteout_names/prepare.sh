mkdir src && echo x > src/x && ln src/x src/y && ln -s x src/s
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf l.tar -C src .
rm -rf src
