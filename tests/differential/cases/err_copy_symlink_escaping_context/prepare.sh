ln -s /etc linkdir
