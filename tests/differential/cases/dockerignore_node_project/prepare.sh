mkdir -p node_modules/a coverage src/logs
echo m > node_modules/a/i.js
echo c > coverage/lcov.info
echo l > src/logs/debug.log
echo l > npm-debug.log
