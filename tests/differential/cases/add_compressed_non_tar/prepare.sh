printf 'not a tar\n' > data.txt
gzip -n -c data.txt > data.txt.gz
bzip2 -c data.txt > data.txt.bz2
rm data.txt
