mkdir -p s/bin
echo script > s/bin/tool
chmod 4755 s/bin/tool
ln -s tool s/bin/alias
ln -s /etc/passwd s/pw
ln s/bin/tool s/bin/hard
echo cfg > s/app.conf
chmod 600 s/app.conf
tar --sort=name --mtime=@0 --owner=0 --group=50 -cf links.tar -C s .
rm -rf s
