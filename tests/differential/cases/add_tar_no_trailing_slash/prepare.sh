mkdir src && echo x > src/x && mkdir src/d && echo y > src/d/y
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf a.tar -C src .
rm -rf src
