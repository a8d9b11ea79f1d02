echo x > exec.sh; chmod 755 exec.sh
echo k > private.key; chmod 600 private.key
echo s > setuid; chmod 4755 setuid
echo g > setgid; chmod 2750 setgid
mkdir -p sticky; chmod 1777 sticky
mkdir -p ro; echo r > ro/r; chmod 555 ro
echo z > zero; chmod 000 zero
