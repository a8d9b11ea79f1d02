mkdir -p dir/empty
chmod 0750 dir/nested
