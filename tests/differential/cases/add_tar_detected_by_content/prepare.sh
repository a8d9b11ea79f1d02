mkdir s; echo x > s/x; tar --sort=name --mtime=@0 --owner=0 --group=0 -cf plain -C s .; gzip -n -c plain > data.bin; cp plain ARCHIVE.TAR; xz -c plain > noext; rm -rf s plain
