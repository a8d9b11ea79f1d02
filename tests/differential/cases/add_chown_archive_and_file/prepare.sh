mkdir src && echo x > src/x && mkdir src/d && echo y > src/d/y
tar --sort=name --mtime=@0 --owner=5 --group=6 -cf archive.tar -C src .
rm -rf src
