// Command sfemulator runs the Salesforce org emulator (package salesforce/emulator) on a local
// address and prints its URL, the org's credentials and the control token, URL first:
//
//	sfemulator listening on http://127.0.0.1:41234
//
// It serves until SIGINT or SIGTERM. It never logs tokens or passwords; the banner prints the
// seed's credentials because they are what a user of the emulator needs to log in.
package main
