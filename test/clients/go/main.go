// Lists operators, then decodes the BadRequest of a page_size over the limit
// with the standard errdetails package (genproto).
package main

import (
	"context"
	"fmt"
	"os"

	crmv1 "example.com/crmclient/crm/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

func main() {
	// WithInsecure: Debian's grpc-go (1.33) predates credentials/insecure.
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	query := crmv1.NewQueryServiceClient(conn)
	list, err := query.ListOperators(context.Background(), &crmv1.ListOperatorsRequest{})
	if err != nil {
		panic(err)
	}
	fmt.Println("operator", list.Operators[0].Name)
	_, err = query.ListOperators(context.Background(), &crmv1.ListOperatorsRequest{PageSize: 1000})
	for _, detail := range status.Convert(err).Details() {
		if bad, ok := detail.(*errdetails.BadRequest); ok {
			fmt.Println("bad field", bad.FieldViolations[0].Field)
		}
	}
}
