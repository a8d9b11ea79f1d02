mkdir -p node_modules/pkg .git/objects lib/logs
echo x > node_modules/pkg/index.js
echo ref > .git/HEAD
echo log > lib/logs/a.log
echo log > top.log
mkdir -p empty/nested
